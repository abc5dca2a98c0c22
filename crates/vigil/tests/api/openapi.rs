//! Checks JSON answers against the schemas of `docs/openapi.json`: the
//! subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that document
//! uses: `$ref` to `#/components/schemas/..`, `type` (one or a list, for
//! nullable fields), `required`, `properties`, `additionalProperties`,
//! `items`, `enum`, `const`, `minimum`, `maximum` and `anyOf`.

#![allow(dead_code)]

use serde_json::Value;

/// The OpenAPI document.
pub struct OpenApi {
    document: Value,
}

impl OpenApi {
    /// Reads `docs/openapi.json` of the workspace.
    pub fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let document = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self { document }
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The schema of the JSON answer of `method path` with `status`
    /// (`path` as templated in the document).
    pub fn response_schema(&self, method: &str, path: &str, status: u16) -> &Value {
        let item = &self.document["paths"][path];
        assert!(item.is_object(), "docs/openapi.json has no path {path}");
        let operation = &item[method.to_ascii_lowercase()];
        let response = if operation.is_object() {
            let responses = &operation["responses"];
            match &responses[status.to_string()] {
                Value::Null => &responses["default"],
                response => response,
            }
        } else {
            // A method the path does not have: the 405 of the document.
            assert_eq!(status, 405, "{method} {path} is not documented");
            &self.document["components"]["responses"]["MethodNotAllowed"]
        };
        let response = self.resolve(response);
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "docs/openapi.json documents no JSON answer {status} of {method} {path}"
        );
        schema
    }

    /// Follows a `$ref` (to anything under `#/`), if `node` is one.
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node["$ref"].as_str() {
            Some(reference) => {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("only local references: {reference}"));
                let target = self
                    .document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling reference {reference}"));
                self.resolve(target)
            }
            None => node,
        }
    }

    /// Checks `value` against `schema`; `Err` lists every mismatch with
    /// its JSON path.
    pub fn check(&self, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        self.walk(schema, value, "$", &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn walk(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(choices) = schema["anyOf"].as_array() {
            let fits = choices.iter().any(|choice| {
                let mut inner = Vec::new();
                self.walk(choice, value, at, &mut inner);
                inner.is_empty()
            });
            if !fits {
                problems.push(format!("{at}: {value} matches none of anyOf"));
            }
        }
        if let Some(types) = types_of(schema)
            && !types.iter().any(|kind| has_type(value, kind))
        {
            problems.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            problems.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            problems.push(format!("{at}: {value} is not {constant}"));
        }
        if let Some(number) = value.as_f64() {
            if schema["minimum"]
                .as_f64()
                .is_some_and(|minimum| number < minimum)
            {
                problems.push(format!("{at}: {number} is below {}", schema["minimum"]));
            }
            if schema["maximum"]
                .as_f64()
                .is_some_and(|maximum| number > maximum)
            {
                problems.push(format!("{at}: {number} is above {}", schema["maximum"]));
            }
        }
        if let Value::Object(fields) = value {
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    problems.push(format!("{at}: the required field `{name}` is missing"));
                }
            }
            let properties = schema["properties"].as_object();
            for (name, field) in fields {
                let path = format!("{at}.{name}");
                match properties.and_then(|properties| properties.get(name)) {
                    Some(property) => self.walk(property, field, &path, problems),
                    None => match &schema["additionalProperties"] {
                        Value::Bool(false) => {
                            problems.push(format!("{path}: not in the schema"));
                        }
                        extra @ Value::Object(_) => self.walk(extra, field, &path, problems),
                        _ => {}
                    },
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
            for (index, item) in items.iter().enumerate() {
                self.walk(item_schema, item, &format!("{at}[{index}]"), problems);
            }
        }
    }
}

fn types_of(schema: &Value) -> Option<Vec<&str>> {
    match &schema["type"] {
        Value::String(kind) => Some(vec![kind.as_str()]),
        Value::Array(kinds) => Some(kinds.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}
