#!/usr/bin/env bash
# Builds the documentation site (docs/_site) and checks that the documentation cannot rot. Fails (exit 1) when:
#   - the README's quickstart is not the code of examples/Quickstart (docs/check_readme.py), or links to a missing file;
#   - the quickstart example does not run on a small generated image folder (lenet5, one epoch, no download);
#   - the generated reference pages (docs/reference/models.md, cli.md) differ from what the code generates now
#     (run docs/reference/regenerate.sh and commit);
#   - a library project does not generate XML docs, or silences CS1591 (missing XML docs of public API fail the build);
#   - DocFX reports any warning: a broken link between pages, a missing file, a code reference to a missing region, a bad
#     cross-reference in the XML docs (--warningsAsErrors).
# Needs a Release build of the solution (dotnet build Cnn.MLNet.sln -c Release). Usage: docs/build.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$SECONDS
fail() { echo "docs: $*" >&2; exit 1; }

for project in src/Cnn.Backbones/Cnn.Backbones.csproj src/Cnn.MLNet/Cnn.MLNet.csproj; do
  grep -q '<GenerateDocumentationFile>true</GenerateDocumentationFile>' "$project" || fail "$project does not generate XML docs"
done
if grep -rqE 'NoWarn[^<]*(CS)?1591' Directory.Build.props src/Cnn.Backbones src/Cnn.MLNet --include='*.props' --include='*.csproj' \
   || grep -rqE 'pragma warning disable[^\n]*CS1591' src/Cnn.Backbones src/Cnn.MLNet --include='*.cs'; then
  fail "CS1591 (missing XML docs of public API) is silenced somewhere in the libraries"
fi

python3 docs/check_readme.py "$root"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
quickstart="examples/Quickstart/bin/Release/net10.0/Quickstart.dll"
[ -f "$quickstart" ] || fail "$quickstart not found: build the solution in Release first"
dotnet "$quickstart" --dir "$work/quickstart" --model lenet5 --epochs 1 --per-class 6 || fail "examples/Quickstart failed"

docs/reference/regenerate.sh "$work/reference" >/dev/null
for page in models.md cli.md; do
  diff -u "docs/reference/$page" "$work/reference/$page" >&2 \
    || fail "docs/reference/$page is out of date: run docs/reference/regenerate.sh and commit the result"
done

dotnet tool restore >/dev/null
rm -rf docs/api docs/_site
dotnet docfx docs/docfx.json --warningsAsErrors || fail "DocFX reported warnings or errors (above)"
echo "docs: site built in docs/_site, checks passed ($((SECONDS - start)) s)"
