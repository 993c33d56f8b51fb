"""Routes, one module per domain; each module's ``router`` holds its pages and its API."""
