//! Temporary API surface while the engine is written; replaced by the real engine.
#![allow(missing_docs)]
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct Cache<K, V> {
    inner: Arc<Mutex<HashMap<K, V>>>,
    cap: u64,
}
impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), cap: self.cap }
    }
}
#[derive(Debug)]
pub struct CacheBuilder<K, V> {
    cap: u64,
    _p: std::marker::PhantomData<(K, V)>,
}
impl<K: Hash + Eq + Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static> Cache<K, V> {
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder { cap: 0, _p: Default::default() }
    }
    pub fn new(cap: u64) -> Self {
        Self::builder().max_capacity(cap).build()
    }
    pub fn get(&self, k: &K) -> Option<V> {
        self.inner.lock().unwrap().get(k).cloned()
    }
    pub fn insert(&self, k: K, v: V) {
        let mut m = self.inner.lock().unwrap();
        if m.len() as u64 >= self.cap {
            let victim = m.keys().next().cloned();
            if let Some(x) = victim { m.remove(&x); }
        }
        m.insert(k, v);
    }
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool { self.len() == 0 }
}
impl<K: Hash + Eq + Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static> CacheBuilder<K, V> {
    pub fn max_capacity(mut self, n: u64) -> Self { self.cap = n; self }
    pub fn build(self) -> Cache<K, V> {
        Cache { inner: Default::default(), cap: self.cap }
    }
}
