//! `POST /predict` bodies through the streaming parser, with and without feature names: no
//! panic; a parse that succeeds gives whole rows of finite numbers, within the limit.
#![no_main]

use edgescore_contract::predict::{Features, parse_predict};
use libfuzzer_sys::fuzz_target;

const MAX_INSTANCES: usize = 32;

fuzz_target!(|body: &[u8]| {
    let names = ["a".to_string(), "b".to_string(), "c".to_string()];
    for names in [&names[..], &[]] {
        let features = Features { names, width: 3 };
        match parse_predict(body, &features, MAX_INSTANCES) {
            Ok(rows) => {
                assert_eq!(rows.len() % 3, 0, "whole rows");
                assert!(rows.len() / 3 <= MAX_INSTANCES, "within the limit");
                assert!(rows.iter().all(|x| x.is_finite()), "{rows:?}");
            }
            Err(e) => assert!(matches!(e.status(), 400 | 413 | 422)),
        }
    }
});
