#!/usr/bin/env bash
# Coverage-guided fuzzing of one user-file parser with SharpFuzz + AFL++, for a given time.
#   tools/fuzz.sh FORMAT SECONDS      FORMAT: pth | safetensors | onnx | idx | image | modelzip
# Builds fuzz/Cnn.Fuzz, instruments Cnn.Backbones.dll and Cnn.MLNet.dll with SharpFuzz, seeds from real files, runs afl-fuzz
# for SECONDS and prints the executions, the crashes and hangs, and each crash replayed (the exception it throws).
# Work folder: $FUZZ_WORK/FORMAT (default /tmp/cnn-fuzz/FORMAT); a second run of the same format resumes from its queue.
# Installs afl++ (Debian) and the sharpfuzz tool (NuGet SharpFuzz.CommandLine) when missing. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
format=${1:?usage: tools/fuzz.sh FORMAT SECONDS}
seconds=${2:?usage: tools/fuzz.sh FORMAT SECONDS}
work=${FUZZ_WORK:-/tmp/cnn-fuzz}/$format
tools=${FUZZ_TOOLS:-/tmp/cnn-fuzz/tools}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

command -v afl-fuzz >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends afl++ >/dev/null; }
[ -x "$tools/sharpfuzz" ] || dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null

dotnet build fuzz/Cnn.Fuzz/Cnn.Fuzz.csproj -c Release -v quiet -nologo >/dev/null
plain=fuzz/Cnn.Fuzz/bin/Release/net10.0   # uninstrumented: seeds and replays (instrumented code runs only under afl-fuzz)
mkdir -p "$work"
if [ ! -d "$work/in" ]; then
  case $format in
    pth|onnx) /usr/bin/python3 tools/fuzz_seeds.py "$format" "$work/in" ;;
    *) dotnet "$plain/Cnn.Fuzz.dll" "$format" --seeds "$work/in" ;;
  esac
fi
# Hard links keep the copy cheap (TorchSharp's native libraries are large); the two assemblies to instrument become files of
# their own first, so instrumenting them never rewrites the build output they were linked to.
rm -rf "$work/bin"
cp -al "$plain" "$work/bin" 2>/dev/null || { rm -rf "$work/bin"; cp -r "$plain" "$work/bin"; }   # another file system: a copy
for dll in Cnn.Backbones.dll Cnn.MLNet.dll; do
  cp "$work/bin/$dll" "$work/bin/$dll.copy" && mv -f "$work/bin/$dll.copy" "$work/bin/$dll"
  "$tools/sharpfuzz" "$work/bin/$dll" >/dev/null
done

input="$work/in"
[ -f "$work/out/default/fuzzer_stats" ] && input=-   # resume

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_FORKSRV_INIT_TMOUT=120000
echo "afl-fuzz -i $input -o $work/out -t 10000 -m none -V $seconds -- dotnet $work/bin/Cnn.Fuzz.dll $format"
afl-fuzz -i "$input" -o "$work/out" -t 10000 -m none -V "$seconds" -- dotnet "$work/bin/Cnn.Fuzz.dll" "$format" > "$work/afl.log" 2>&1 || {
  tail -30 "$work/afl.log"; exit 1; }

stats="$work/out/default/fuzzer_stats"
get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
echo "$format: $(get execs_done) executions in $(get run_time) s ($(get execs_per_sec)/s), $(get corpus_count) inputs in the queue," \
     "$(get saved_crashes) crashes, $(get saved_hangs) hangs"
for crash in "$work"/out/default/crashes/id:*; do
  [ -e "$crash" ] || continue
  echo "--- $crash"
  dotnet "$plain/Cnn.Fuzz.dll" "$format" "$crash" 2>&1 | head -5 || true
done
