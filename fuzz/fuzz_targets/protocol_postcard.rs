#![no_main]
//! The binary forms: a row batch as workers send it (postcard) and a row as the store keeps it
//! (`RowBin`). Any bytes decode or fail cleanly; what decodes encodes and decodes back the same.
use gaia_core::model::{Row, RowBin};
use gaia_core::protocol::{decode_postcard, encode_postcard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = decode_postcard(data) {
        let again = encode_postcard(&batch);
        let back = decode_postcard(&again).expect("an encoded batch decodes");
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&batch).unwrap()
        );
    }
    if let Ok(bin) = postcard::from_bytes::<RowBin>(data) {
        let row = Row::from(bin);
        let again = postcard::to_stdvec(&RowBin::from(&row)).unwrap();
        let back = Row::from(postcard::from_bytes::<RowBin>(&again).expect("decodes"));
        assert_eq!(format!("{row:?}"), format!("{back:?}"));
    }
});
