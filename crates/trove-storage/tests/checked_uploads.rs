//! An upload given the hash it must have appears only when what was read has it: on a folder and in an
//! object store, for a small object (one PUT) and a large one (a multipart upload).

use trove_storage::{Storage, StorageError};

fn stores() -> Vec<(Storage, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let local = Storage::local(dir.path(), false).unwrap();
    let name = format!("memory://checked-{}", std::process::id());
    vec![(local, dir), (Storage::open_url(&name, &[]).unwrap(), tempfile::tempdir().unwrap())]
}

#[test]
fn a_checked_upload_appears_only_with_the_expected_bytes() {
    for (storage, _dir) in stores() {
        for size in [0usize, 1, 3 << 20, (2 * trove_storage::storage::CHUNK) + 17] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let right = blake3::hash(&bytes);
            let wrong = blake3::hash(b"something else");
            let key = format!("lab/ü/{size}.bin");
            let refused = storage.put_stream_checked(&key, &mut bytes.as_slice(), Some(wrong));
            assert!(matches!(refused, Err(StorageError::Changed { .. })), "{}: {refused:?}", storage.url());
            assert!(storage.head(&key).unwrap().is_none(), "{} {size}: nothing may appear", storage.url());
            let (stored, hash) = storage.put_stream_checked(&key, &mut bytes.as_slice(), Some(right)).unwrap();
            assert_eq!((stored, hash), (size as u64, right));
            assert_eq!(storage.get(&key).unwrap().as_ref(), bytes.as_slice());
            let mut back = Vec::new();
            assert_eq!(storage.get_stream(&key, &mut back).unwrap().1, right);
            assert_eq!(back, bytes);
            let middle = size as u64 / 3..size as u64 / 2;
            let range = storage.get_range(&key, middle.clone()).unwrap();
            assert_eq!(range.as_ref(), &bytes[middle.start as usize..middle.end as usize]);
        }
    }
}
