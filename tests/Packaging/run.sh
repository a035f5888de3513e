#!/usr/bin/env bash
# Packaging test: what a .NET team installs, checked from the packed packages rather than the source tree.
#   1. dotnet pack Cnn.Backbones, Cnn.MLNet and the cnn tool (Cnn.Cli) into a local folder feed;
#   2. assert the packages' contents (licence, readme, XML docs, symbols, no Fashion-MNIST in the SDK, backend left to the app);
#   3. a throwaway console project outside the repository adds Cnn.MLNet from the feed: without a backend it fails with the one
#      message naming the packages to add; with libtorch-cpu-linux-x64 it fine-tunes lenet5 on generated images through
#      mlContext.MulticlassClassification.Trainers.Cnn, saves, reloads and predicts (TorchSharp's native library loads, patched
#      from the package where the system libstdc++ is old);
#   4. dotnet tool install --tool-path <tmp> --add-source <feed> Cnn.Cli; cnn --version and cnn train --limit 200 --epochs 1 -q.
# Usage: tests/Packaging/run.sh [RESULT_FILE]   (RESULT_FILE gets "passed N" and "failed N" lines for .ci/run's count)
# Set PACKAGING_KEEP=1 to keep the temporary folder for inspection.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
result_file=${1:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/cnn-packaging.XXXXXX")
[ "${PACKAGING_KEEP:-}" = "1" ] || trap 'rm -rf "$work"' EXIT
feed=$work/feed
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
passed=0
failed=0
start=$SECONDS

pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 40 | sed 's/^/      /'; return 0; }
finish() {
  echo "packaging: $passed passed, $failed failed in $((SECONDS - start)) s"
  [ -n "$result_file" ] && printf 'passed %d\nfailed %d\n' "$passed" "$failed" > "$result_file"
  [ "$failed" -eq 0 ]
  exit $?
}
step() { echo "---- $1 ($((SECONDS - start)) s)"; }

version=$(cd "$root" && dotnet msbuild src/Cnn.MLNet/Cnn.MLNet.csproj -getProperty:Version 2>/dev/null | tr -d '[:space:]')
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || true)
echo "packaging test: version $version, commit ${commit:-unknown}, work folder $work"

# ---- 1. pack
step "dotnet pack"
for project in src/Cnn.Backbones/Cnn.Backbones.csproj src/Cnn.MLNet/Cnn.MLNet.csproj src/Cnn.Cli/Cnn.Cli.csproj; do
  if out=$(cd "$root" && dotnet pack "$project" -c Release -o "$feed" 2>&1); then
    pass "pack $project"
  else
    fail "pack $project" "$out"
  fi
done
ls -la "$feed" 2>/dev/null | sed 's/^/      /'
[ "$failed" -eq 0 ] || finish

# ---- 2. package contents
step "package contents"
contents=$(/usr/bin/python3 - "$feed" "$version" "$commit" <<'PY'
import re, sys, zipfile, os
feed, version, commit = sys.argv[1], sys.argv[2], sys.argv[3]
results = []
def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))

def nuspec(z):
    return next(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".nuspec") and "/" not in n)

for pid in ["Cnn.Backbones", "Cnn.MLNet", "Cnn.Cli"]:
    path = os.path.join(feed, f"{pid}.{version}.nupkg")
    if not os.path.exists(path):
        check(f"{pid}: {pid}.{version}.nupkg exists", False, str(os.listdir(feed)))
        continue
    z = zipfile.ZipFile(path)
    names = z.namelist()
    spec = nuspec(z)
    check(f"{pid}: licence expression MIT", '<license type="expression">MIT</license>' in spec, spec)
    check(f"{pid}: LICENSE and THIRD-PARTY-NOTICES.md in the package", "LICENSE" in names and "THIRD-PARTY-NOTICES.md" in names, names)
    check(f"{pid}: readme PACKAGE.md declared and present", "<readme>PACKAGE.md</readme>" in spec and "PACKAGE.md" in names, spec)
    check(f"{pid}: description, authors, tags", all(f"<{t}>" in spec for t in ["description", "authors", "tags"]), spec)
    repo = re.search(r'<repository [^>]*type="git"[^>]*/>', spec)
    check(f"{pid}: repository type git" + (" with the commit" if commit else ""), repo and (not commit or commit in repo.group(0)), spec)
    big = [n for n in names if re.search(r"(idx[13]-ubyte|fashion)", n, re.I)]
    if pid == "Cnn.Cli":
        check("Cnn.Cli: a DotnetTool package", '<packageType name="DotnetTool"' in spec, spec)
        settings = next((n for n in names if n.endswith("DotnetToolSettings.xml")), None)
        check("Cnn.Cli: tool command is cnn", settings and 'Name="cnn"' in z.read(settings).decode(), settings)
        cli = next((n for n in names if n.endswith("/cnn.dll")), None)
        data = z.read(cli) if cli else b""
        check("Cnn.Cli: cnn.dll embeds the Fashion-MNIST sample and its notice",
              b"Cnn.Cli.FashionMnist.train-images-idx3-ubyte.gz" in data and b"Cnn.Cli.FashionMnist.NOTICE.txt" in data, cli)
        check("Cnn.Cli: carries the CPU backend (libtorch-cpu-linux-x64)", any(n.endswith("/libtorch_cpu.so") for n in names))
        others = [n for n in names if "/runtimes/" in n and not re.search(r"/runtimes/(linux-x64|linux|unix)/", n)]
        check("Cnn.Cli: no other platforms' native assets", not others, others[:10])
        size = os.path.getsize(path)
        check(f"Cnn.Cli: under nuget.org's 250 MB package limit ({size // 1_000_000} MB)", size < 250_000_000, size)
        continue
    dll = f"lib/net10.0/{pid}.dll"
    check(f"{pid}: {dll} and its XML docs", dll in names and f"lib/net10.0/{pid}.xml" in names, names)
    check(f"{pid}: no data files in the package", not big, big)
    data = z.read(dll) if dll in names else b""
    # Manifest resource names are UTF-8 in the metadata string heap (code literals are UTF-16, so they cannot match).
    check(f"{pid}: {pid}.dll embeds no Fashion-MNIST", b"idx3-ubyte.gz" not in data and b"FashionMnist.NOTICE" not in data and len(data) < 4_000_000,
          f"{len(data)} bytes")
    deps = re.findall(r'<dependency id="([^"]+)"', spec)
    check(f"{pid}: no native backend among the dependencies", not any(d.lower().startswith(("libtorch", "torchsharp-")) for d in deps), deps)
    if pid == "Cnn.Backbones":
        check("Cnn.Backbones: depends on the managed TorchSharp package", "TorchSharp" in deps, deps)
    if pid == "Cnn.MLNet":
        check("Cnn.MLNet: depends on Cnn.Backbones of the same version", re.search(rf'<dependency id="Cnn.Backbones" version="\[?{re.escape(version)}', spec), spec)
    sym = os.path.join(feed, f"{pid}.{version}.snupkg")
    ok = os.path.exists(sym) and f"lib/net10.0/{pid}.pdb" in zipfile.ZipFile(sym).namelist()
    check(f"{pid}: symbols package {pid}.{version}.snupkg with the PDB", ok, os.listdir(feed))

for name, ok, detail in results:
    print(("PASS" if ok else "FAIL") + "\t" + name + ("" if ok else "\t" + str(detail)[:2000].replace("\n", " ")))
PY
)
while IFS=$'\t' read -r verdict name detail; do
  if [ "$verdict" = PASS ]; then pass "$name"; else fail "$name" "${detail:-}"; fi
done <<< "$contents"

# ---- 3. a fresh application outside the repository
step "consumer application"
app=$work/app
mkdir -p "$app"
# The feed beside the configured sources; packages restore into a private folder (so a rerun never sees a stale Cnn.* 0.1.0)
# with the machine's NuGet cache as a read-only fallback (TorchSharp, libtorch and ML.NET are not extracted again).
global_cache=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config>
    <add key="globalPackagesFolder" value="$work/packages" />
  </config>
  <packageSources>
    <add key="cnn-local-feed" value="$feed" />
  </packageSources>
  <fallbackPackageFolders>
    <add key="machine-cache" value="$global_cache" />
  </fallbackPackageFolders>
</configuration>
XML
if out=$(cd "$app" && dotnet new console --force 2>&1 && dotnet add package Cnn.MLNet --version "$version" --source "$feed" 2>&1); then
  pass "dotnet new console + dotnet add package Cnn.MLNet (from the feed)"
else
  fail "dotnet new console + dotnet add package Cnn.MLNet (from the feed)" "$out"
  finish
fi
cat > "$app/Program.cs" <<'CS'
using Cnn.Backbones.Native;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Persistence;
using Microsoft.ML;

// Two classes of generated 28x28 gray images: dark and bright noise.
var random = new Random(7);
var samples = new List<ImageSample>();
for (int i = 0; i < 16; i++)
{
    int label = i % 2;
    var pixels = new byte[28 * 28];
    for (int p = 0; p < pixels.Length; p++) pixels[p] = (byte)(label == 0 ? random.Next(0, 70) : random.Next(180, 256));
    samples.Add(ImageSample.FromPixels(pixels, 28, 28, 1, label, $"generated[{i}]"));
}
var ml = new MLContext(seed: 1);
var data = ImageDataViews.ToDataView(ml, new ImageDataset(samples, ["dark", "bright"]));
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.MulticlassClassification.Trainers.Cnn(new CnnTrainerOptions
    {
        Architecture = "lenet5", Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 3, BatchSize = 8, Augment = false,
    }))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
var model = pipeline.Fit(data);
string path = Path.Combine(AppContext.BaseDirectory, "model.zip");
CnnPipelineFile.Save(ml, model, data.Schema, path);
var loaded = CnnPipelineFile.Load(ml, path, out _);
var before = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: false).Select(p => p.PredictedClass).ToList();
var after = ml.Data.CreateEnumerable<Prediction>(loaded.Transform(data), reuseRowObject: false).Select(p => p.PredictedClass).ToList();
Console.WriteLine($"native: {TorchRuntime.Status}");
Console.WriteLine($"predicted: {string.Join(",", after)}");
Console.WriteLine($"accuracy: {after.Select((p, i) => p == (i % 2 == 0 ? "dark" : "bright")).Count(c => c)}/{after.Count}");
if (after.Count != 16 || !before.SequenceEqual(after)) { Console.Error.WriteLine("the reloaded model predicts differently"); return 1; }
Console.WriteLine("reloaded model predicts as the fitted one");
return 0;

sealed class Prediction
{
    public string PredictedClass { get; set; } = "";
}
CS
# Without a backend package: one clear error at first use naming the packages to add.
if out=$(cd "$app" && dotnet build -c Release 2>&1); then
  pass "the application builds against the packed Cnn.MLNet"
  out=$(cd "$app" && dotnet bin/Release/net10.0/app.dll 2>&1); code=$?
  if [ $code -ne 0 ] && grep -q "native backend (LibTorch) is missing" <<< "$out" && grep -q "libtorch-cpu-linux-x64" <<< "$out" \
     && grep -q "dotnet add package libtorch-cpu-linux-x64" <<< "$out"; then
    pass "without a backend package: TorchNativeLoadException names the packages to add"
    grep -m1 "TorchNativeLoadException" <<< "$out" | cut -c1-400 | sed 's/^/      /'
  else
    fail "without a backend package: TorchNativeLoadException names the packages to add (exit $code)" "$out"
  fi
else
  fail "the application builds against the packed Cnn.MLNet" "$out"
fi
# With the CPU backend: fine-tune, save, reload, predict.
if out=$(cd "$app" && dotnet add package libtorch-cpu-linux-x64 --version 2.10.0 2>&1 && dotnet build -c Release 2>&1); then
  pass "dotnet add package libtorch-cpu-linux-x64 + build"
  out=$(cd "$app" && timeout 600 dotnet bin/Release/net10.0/app.dll 2>&1); code=$?
  printf '%s\n' "$out" | sed 's/^/      /'
  if [ $code -eq 0 ] && grep -q "reloaded model predicts as the fitted one" <<< "$out"; then
    pass "lenet5 fine-tuned through Trainers.Cnn, saved, reloaded and predicted"
  else
    fail "lenet5 fine-tuned through Trainers.Cnn, saved, reloaded and predicted (exit $code)" "$out"
  fi
  if grep -q -E "^native: (patched copy at|not needed)" <<< "$out"; then
    pass "TorchSharp's native library loads from the package (GLIBCXX fix applied where needed)"
  else
    fail "TorchSharp's native library loads from the package (GLIBCXX fix applied where needed)" "$out"
  fi
else
  fail "dotnet add package libtorch-cpu-linux-x64 + build" "$out"
fi

# ---- 4. the cnn tool
step "dotnet tool install"
tools=$work/tools
if out=$(cd "$work" && dotnet tool install Cnn.Cli --version "$version" --tool-path "$tools" --add-source "$feed" 2>&1); then
  pass "dotnet tool install --tool-path <tmp> --add-source <feed> Cnn.Cli"
  out=$("$tools/cnn" --version 2>&1); code=$?
  expected="cnn $version"; [ -n "$commit" ] && expected="cnn $version+$commit"
  if [ $code -eq 0 ] && [ "$out" = "$expected" ]; then pass "cnn --version prints '$expected'"; else fail "cnn --version prints '$expected' (exit $code)" "$out"; fi
  step "cnn train"
  out=$(cd "$work" && timeout 600 "$tools/cnn" train --limit 200 --epochs 1 -q --output "$work/tool-model.zip" 2>&1); code=$?
  printf '%s\n' "$out" | sed 's/^/      /'
  if [ $code -eq 0 ] && [ -s "$work/tool-model.zip" ]; then pass "cnn train --limit 200 --epochs 1 -q"; else fail "cnn train --limit 200 --epochs 1 -q (exit $code)" "$out"; fi
else
  fail "dotnet tool install --tool-path <tmp> --add-source <feed> Cnn.Cli" "$out"
fi
finish
