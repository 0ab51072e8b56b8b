//! Reading the families' JSON configs with errors that name the file and the key.

use serde_json::Value;

use super::loaded::LoadError;

/// Reading helpers for the families' JSON configs.
pub(crate) struct Json<'a> {
    pub file: &'a str,
    pub value: &'a Value,
}

impl<'a> Json<'a> {
    pub fn new(file: &'a str, value: &'a Value) -> Self {
        Self { file, value }
    }

    pub fn child(&self, key: &str) -> Json<'a> {
        static NULL: Value = Value::Null;
        Json {
            file: self.file,
            value: self.value.get(key).unwrap_or(&NULL),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.value.get(key).is_some_and(|value| !value.is_null())
    }

    fn bad(&self, key: &str, expected: &str) -> LoadError {
        LoadError::Config {
            file: self.file.to_string(),
            detail: format!("`{key}` should be {expected}"),
        }
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            // open_clip allows `image_size: [h, w]`; this port takes square inputs.
            Some(Value::Array(items)) if items.len() == 2 && items[0] == items[1] => items[0]
                .as_u64()
                .map(|value| value as usize)
                .ok_or_else(|| self.bad(key, "a positive integer")),
            Some(value) => value
                .as_u64()
                .map(|value| value as usize)
                .ok_or_else(|| self.bad(key, "a positive integer")),
        }
    }

    pub fn usize(&self, key: &str) -> Result<usize, LoadError> {
        if !self.has(key) {
            return Err(LoadError::Config {
                file: self.file.to_string(),
                detail: format!("`{key}` is missing"),
            });
        }
        self.usize_or(key, 0)
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value.as_f64().ok_or_else(|| self.bad(key, "a number")),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.bad(key, "true or false")),
        }
    }

    pub fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value.as_str().ok_or_else(|| self.bad(key, "a string")),
        }
    }

    pub fn triple_or(&self, key: &str, default: [f32; 3]) -> Result<[f32; 3], LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Array(items)) if items.len() == 3 => {
                let mut out = [0.0f32; 3];
                for (slot, item) in out.iter_mut().zip(items) {
                    *slot = item
                        .as_f64()
                        .ok_or_else(|| self.bad(key, "three numbers"))?
                        as f32;
                }
                Ok(out)
            }
            Some(_) => Err(self.bad(key, "three numbers")),
        }
    }

    pub fn unsupported(&self, feature: impl Into<String>) -> LoadError {
        LoadError::Unsupported {
            file: self.file.to_string(),
            feature: feature.into(),
        }
    }
}
