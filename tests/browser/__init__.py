"""Browser tests: real Chromium (Debian\x27s) driven by Playwright against the app served by uvicorn."""
