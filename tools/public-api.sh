#!/usr/bin/env bash
# Updates the libraries' public API baseline (src/<library>/PublicAPI.Unshipped.txt) from what the code declares:
# adds every symbol RS0016 reports (public but not declared) and removes every line RS0017 reports (declared but gone).
# Review the diff: it is the change of the public API. On release, move the Unshipped lines to PublicAPI.Shipped.txt.
# Usage: tools/public-api.sh [library ...]   (default: Cnn.Backbones Cnn.MLNet; build Cnn.Backbones first when doing one)
set -euo pipefail
cd "$(dirname "$0")/.."
libraries=("$@")
[ ${#libraries[@]} -gt 0 ] || libraries=(Cnn.Backbones Cnn.MLNet)
for library in "${libraries[@]}"; do
  project=src/$library/$library.csproj
  log=$(mktemp)
  # Rebuild only this project (so the analyzers run) with the API diagnostics as warnings; its references must be built.
  dotnet msbuild "$project" -t:Rebuild -p:Configuration=Release -p:BuildProjectReferences=false -p:TreatWarningsAsErrors=false \
    -nologo -clp:NoSummary -v:q > "$log" 2>&1 || true
  /usr/bin/python3 - "src/$library/PublicAPI.Unshipped.txt" "src/$library/PublicAPI.Shipped.txt" "$log" <<'PY'
import re, sys
unshipped, shipped, log = sys.argv[1:4]
text = open(log, encoding="utf-8").read()
added = set(re.findall(r"RS0016: Symbol '(.*?)' is not part of the declared public API", text))
removed = set(re.findall(r"RS0017: Symbol '(.*?)' is part of the declared API, but is either not public or could not be found", text))
def update(path, add):
    lines = [l.rstrip("\n") for l in open(path, encoding="utf-8")]
    header = [l for l in lines if l.startswith("#")] or ["#nullable enable"]
    body = {l for l in lines if l and not l.startswith("#")}
    body = (body - removed) | add
    open(path, "w", encoding="utf-8", newline="\n").write("\n".join(header + sorted(body, key=str.lower)) + "\n")
update(shipped, set())
update(unshipped, added)
print(f"{unshipped}: +{len(added)} -{len(removed)}")
PY
  if grep -q -E 'error (CS|RS00(1[^67]|[2-9]))' "$log"; then grep -E 'error (CS|RS)' "$log" | grep -v -E 'RS001[67]' | sort -u | head -20; fi
  rm -f "$log"
done
