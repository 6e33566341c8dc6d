"""The media library: an account's uploaded images, their thumbnails and the public path that
serves them to recipients (see docs/readme/media.md)."""
