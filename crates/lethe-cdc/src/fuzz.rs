//! Entry points for the fuzzers (the `lethe-fuzz` crate): the parsers that read what the
//! network and operators hand this crate, reachable from outside without making the decoders
//! themselves public. Each returns whether the input was accepted; none may panic or take more
//! than linear time, whatever the input.

use bytes::Bytes;

/// Decodes `data` as a walsender CopyData payload and, when it is XLogData, its pgoutput
/// message.
pub fn replication_message(data: &[u8]) -> bool {
    let data = Bytes::copy_from_slice(data);
    match crate::pgoutput::decode_server_message(data.clone()) {
        Ok(crate::pgoutput::ServerMessage::XLogData { data, .. }) => {
            crate::pgoutput::decode_logical(data).is_ok()
        }
        Ok(_) => true,
        // The same bytes as a bare pgoutput message, so the decoder is reached directly too.
        Err(_) => crate::pgoutput::decode_logical(data).is_ok(),
    }
}

/// Parses `text` as a change-capture configuration (TOML, optionally under `[cdc]`) and
/// compiles its `[[table]]` rules and key templates.
pub fn rules(text: &str) -> bool {
    match crate::config::CdcConfig::from_toml(text) {
        Ok(config) => crate::rules::CompiledRules::compile(&config.tables).is_ok(),
        Err(_) => false,
    }
}
