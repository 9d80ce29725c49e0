#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (no browser download of its own).
# Install it where we can (root with apt); otherwise say how, and those tests skip (CI fails them).
set -u
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
    exit 0
  fi
  echo "Could not install chromium: the browser tests will skip (and fail in CI)."
else
  echo "chromium is not installed: the browser tests will skip. On Debian or Ubuntu: sudo apt-get install chromium"
fi
exit 0
