"""Salt engine modules of this extension (the loader skips this file)."""
