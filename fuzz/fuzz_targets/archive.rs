#![no_main]
//! A release's experiments archive, hostile: any bytes unpack or are refused, and nothing is
//! ever written outside the destination folder.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // tmpfs when there is one: the target writes a file per run.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let archive = base.path().join("a.tar.gz");
    std::fs::write(&archive, data).unwrap();
    let dest = base.path().join("inside").join("dest");
    std::fs::create_dir_all(base.path().join("inside")).unwrap();
    let _ = gaia_core::release::archive::unpack(&archive, &dest);
    // Nothing beside the destination: only the archive, and `inside` holding at most `dest`.
    let mut top: Vec<_> = std::fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["a.tar.gz", "inside"],
        "written beside the destination"
    );
    for e in std::fs::read_dir(base.path().join("inside")).unwrap() {
        assert_eq!(
            e.unwrap().file_name(),
            "dest",
            "written beside the destination"
        );
    }
});
