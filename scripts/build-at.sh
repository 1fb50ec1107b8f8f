#!/usr/bin/env bash
# Builds ferry's release binary as it was at a commit, in a git worktree of its own:
#   scripts/build-at.sh COMMIT DIR    → DIR/.build/release/ferry
set -euo pipefail
commit=$(git rev-parse --verify "$1^{commit}")
dir=$2
export PATH="$PATH:/opt/swift/usr/bin"
if [ -d "$dir" ] && [ "$(git -C "$dir" rev-parse HEAD 2>/dev/null)" != "$commit" ]; then
    git worktree remove --force "$dir"
fi
[ -d "$dir" ] || git worktree add --detach "$dir" "$commit"
# Commits before session 28 link Debian's libphonenumber package; later ones the build of their own
# scripts/libphonenumber.sh.
if [ -x "$dir/scripts/libphonenumber.sh" ]; then
    "$dir/scripts/libphonenumber.sh"
else
    scripts/install-deps.sh libphonenumber-dev
fi
(cd "$dir" && swift build -c release --product ferry 2>&1 | tail -1)
echo "built $dir/.build/release/ferry at $(git rev-parse --short "$commit")"
