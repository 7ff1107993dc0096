"""Salt beacon modules of this extension (the loader skips this file)."""
