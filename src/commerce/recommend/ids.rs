//! Product ids as small integers: the models count pairs of products, and a pair of `u32`s is a
//! fraction of the memory of a pair of strings.

use std::collections::HashMap;
use std::sync::Arc;

/// A product's number in an [`Ids`].
pub type Id = u32;

/// Interned product ids: each distinct id gets the next number, for good.
#[derive(Debug, Default)]
pub struct Ids {
    by_name: HashMap<Arc<str>, Id>,
    names: Vec<Arc<str>>,
}

impl Ids {
    /// The number of `name`, given one if it has none.
    pub fn intern(&mut self, name: &str) -> Id {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = Id::try_from(self.names.len()).unwrap_or(Id::MAX);
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.by_name.insert(name, id);
        id
    }

    /// The number of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<Id> {
        self.by_name.get(name).copied()
    }

    /// The name of `id`.
    pub fn name(&self, id: Id) -> &Arc<str> {
        static NONE: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
        self.names.get(id as usize).unwrap_or(&NONE)
    }

    /// How many ids are known.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no id is known.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        let text: usize = self.names.iter().map(|n| n.len() + 16).sum();
        text + self.names.capacity() * 16 + self.by_name.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_keeps_its_number() {
        let mut ids = Ids::default();
        let a = ids.intern("a");
        let b = ids.intern("b");
        assert_ne!(a, b);
        assert_eq!(ids.intern("a"), a);
        assert_eq!(ids.get("b"), Some(b));
        assert_eq!(ids.get("c"), None);
        assert_eq!(&**ids.name(b), "b");
        assert_eq!(ids.len(), 2);
    }
}
