#!/usr/bin/env bash
# The build context of the collection's execution environment, without a container runtime:
#   1. `ansible-galaxy collection build` on the files git knows (reports/ and other ignored
#      files stay out) -> OUT/build/cloudops-leveller-<version>.tar.gz
#   2. that tarball (as OUT/cloudops-leveller.tar.gz) and extensions/ee/execution-environment.yml
#      side by side in OUT, then `ansible-builder create` -> OUT/context (Containerfile, _build/)
#   3. checks: the context holds the Containerfile and the very tarball; the galaxy stage's own
#      requirements install the tarball offline; `ansible-builder introspect` on that install
#      finds every package of requirements.txt and bindep.txt (the collection's
#      meta/execution-environment.yml wiring).
# Then build the image where podman or docker runs:
#   ansible-builder build -f OUT/execution-environment.yml -c OUT/context -t cloudops-leveller-ee:latest
# Usage: scripts/ee-context.sh [OUT]   (default tests/output/ee). Exit 1 on any failed step or check.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
VENV=${LEVELLER_VENV:-$LEVELLER_HOME/venv}
[ -d "$VENV/bin" ] && export PATH=$VENV/bin:$PATH
OUT=${1:-$TOP/tests/output/ee}
DEF=$TOP/extensions/ee/execution-environment.yml
CHECKS=0

fail() { echo "ee: FAILED: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ee: ok: $*"; }
step() { echo "ee: ---- $*"; }

command -v ansible-galaxy >/dev/null || fail "ansible-galaxy not found (run make deps)"
command -v ansible-builder >/dev/null || fail "ansible-builder not found (tests/requirements.txt; run make deps)"
builder_version=$(ansible-builder --version)
case $builder_version in
  3.*) ok "ansible-builder $builder_version" ;;
  *) fail "ansible-builder $builder_version: the definition is schema version 3, which needs ansible-builder 3.x" ;;
esac
[ -f "$DEF" ] || fail "$DEF is missing"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/src" "$OUT/build" "$OUT/context" "$OUT/install" "$OUT/cloudops-leveller.tar.gz" \
       "$OUT/execution-environment.yml" "$OUT/introspect.yml"

step "collection tarball"
git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1 || fail "$TOP is not a git checkout: the tarball is built from the files git knows"
mkdir -p "$OUT/src" "$OUT/build"
(cd "$TOP" && git ls-files -co --exclude-standard -z | grep -zv '^tests/output/' \
   | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
   | rsync -a --from0 --files-from=- ./ "$OUT/src/") || fail "cannot copy the checkout to $OUT/src"
ansible-galaxy collection build --force --output-path "$OUT/build" "$OUT/src" \
  || fail "ansible-galaxy collection build failed"
shopt -s nullglob
tarballs=("$OUT"/build/cloudops-leveller-*.tar.gz)
shopt -u nullglob
[ ${#tarballs[@]} -eq 1 ] || fail "expected one cloudops-leveller-*.tar.gz in $OUT/build, found ${#tarballs[@]}"
TARBALL=${tarballs[0]}
listing=$(tar -tzf "$TARBALL") || fail "$TARBALL is not a readable tar.gz"
for f in MANIFEST.json FILES.json meta/execution-environment.yml meta/runtime.yml requirements.txt bindep.txt \
         plugins/modules/level_plan.py playbooks/balance.yml; do
  grep -qx "$f" <<< "$listing" || fail "the tarball lacks $f"
done
if grep -qE '^(reports|tests/output|\.git)/' <<< "$listing"; then
  fail "the tarball holds files that must stay out: $(grep -E '^(reports|tests/output|\.git)/' <<< "$listing" | head -3 | tr '\n' ' ')"
fi
ok "$(basename "$TARBALL"): $(wc -l <<< "$listing") entries, with meta/execution-environment.yml, requirements.txt, bindep.txt"

step "ansible-builder create"
cp "$TARBALL" "$OUT/cloudops-leveller.tar.gz"
cp "$DEF" "$OUT/execution-environment.yml"
(cd "$OUT" && ansible-builder create -f execution-environment.yml -c context --output-filename Containerfile -v 2) \
  || fail "ansible-builder create failed"
CF=$OUT/context/Containerfile
[ -f "$CF" ] || fail "no Containerfile in $OUT/context"
base=$(sed -n '/^images:/,/^[a-z]/s/^ *name: *//p' "$DEF" | head -1)
grep -q "^ARG EE_BASE_IMAGE=\"$base\"" "$CF" || fail "the Containerfile does not start from $base"
# shellcheck disable=SC2016  # the literal $-names of the Containerfile
grep -q '^FROM $EE_BASE_IMAGE' "$CF" || fail "the Containerfile has no FROM \$EE_BASE_IMAGE"
# shellcheck disable=SC2016
grep -q 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS' "$CF" \
  || fail "the Containerfile does not install the galaxy requirements"
grep -q '^ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline"' "$CF" || fail "the galaxy install is not --offline"
ok "Containerfile from $base, collections installed with --offline"
cmp -s "$TARBALL" "$OUT/context/_build/collections/cloudops-leveller.tar.gz" \
  || fail "the context does not hold the built tarball at _build/collections/cloudops-leveller.tar.gz"
ok "context/_build/collections/cloudops-leveller.tar.gz is the built tarball"

step "the galaxy stage's install, offline"
REQ=$OUT/context/_build/requirements.yml
[ -f "$REQ" ] || fail "no galaxy requirements in the context"
# The image runs this in /build (the context's _build/); the same here, into a scratch path.
# Only the install folder is looked at: a cloudops.leveller already on this machine's collection
# path (the repository's own link, as under make) would make ansible-galaxy install nothing.
(cd "$OUT/context/_build" && ANSIBLE_COLLECTIONS_PATH="$OUT/install" ansible-galaxy collection install \
   --offline -r requirements.yml --collections-path "$OUT/install") || fail "the galaxy requirements do not install offline"
[ -f "$OUT/install/ansible_collections/cloudops/leveller/MANIFEST.json" ] \
  || fail "the install holds no cloudops.leveller"
ok "requirements.yml installs cloudops.leveller from the tarball, offline"

step "ansible-builder introspect"
ansible-builder introspect --sanitize "$OUT/install" > "$OUT/introspect.yml" \
  || fail "ansible-builder introspect failed"
missing=()
while read -r name; do
  grep -qiE "^- ['\"]?${name}[^a-z0-9_.-].*from collection cloudops.leveller" "$OUT/introspect.yml" || missing+=("$name")
done < <(sed -e 's/#.*//' "$TOP/requirements.txt" | grep -oE '^[A-Za-z0-9_.-]+' | sort -u)
[ ${#missing[@]} -eq 0 ] || fail "introspect misses Python packages of requirements.txt: ${missing[*]} (see $OUT/introspect.yml)"
ok "introspect: every Python package of requirements.txt"
missing=()
while read -r name; do
  grep -qE "^- ['\"]?${name} .*from collection cloudops.leveller" "$OUT/introspect.yml" || missing+=("$name")
done < <(sed -e 's/#.*//' "$TOP/bindep.txt" | awk 'NF {print $1}' | sort -u)
[ ${#missing[@]} -eq 0 ] || fail "introspect misses system packages of bindep.txt: ${missing[*]} (see $OUT/introspect.yml)"
ok "introspect: every system package of bindep.txt"

echo "ee: build context in $OUT/context; build the image with"
echo "ee:   ansible-builder build -f $OUT/execution-environment.yml -c $OUT/context -t cloudops-leveller-ee:latest"
echo "ee: $CHECKS passed, 0 failed"
