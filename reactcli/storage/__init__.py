"""HDF5 feature store (one file per shard, atomic, resumable, lazily read)."""

from reactcli.storage.store import ARRAYS_MANIFEST, FeatureStore, ShardWriter, crc32, dataset_key, verify_store, write_arrays

__all__ = ["ARRAYS_MANIFEST", "FeatureStore", "ShardWriter", "crc32", "dataset_key", "verify_store", "write_arrays"]
