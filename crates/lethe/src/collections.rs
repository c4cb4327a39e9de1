//! Hash maps and sets for the engine's side structures (tag index, dependency graph), with
//! foldhash: fast, and seeded per map so key sets cannot be chosen to collide.

pub(crate) type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = hashbrown::HashSet<K, foldhash::fast::RandomState>;
