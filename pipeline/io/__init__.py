"""Reading inputs, decoding images, atomic writes, tar shards and manifests."""
