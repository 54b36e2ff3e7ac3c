#!/usr/bin/env bash
# Integration test of the packages (docs/packaging.md): `dotnet pack` makes the `iommusim` tool
# package, the four model library packages and the simulation library (IommuSim.Simulation); the tool is installed from that local folder into a
# temporary --tool-path (never the user's global tools) and runs `check` and `run` on the
# quick-start config; the library example (scripts/package-example/Program.cs) is built as a
# project of its own against the IommuSim.Simulation package, runs the quick-start config through
# the library and must write the same summary.json as the tool. Everything goes into a temporary
# folder, with its own NuGet package cache (NUGET_PACKAGES) so that no earlier package of the same
# version can stand in for the one just made; the folder is removed unless a check fails.
#
#   scripts/package-test.sh          # from anywhere; .ci/run runs it after dotnet test
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
W=$(mktemp -d /tmp/iommusim-package-test.XXXXXX)
FAILED=0
CHECKS=0
log() { printf '[package-test %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
ok() { CHECKS=$((CHECKS + 1)); log "ok: $*"; }
fail() { log "FAIL: $*"; FAILED=1; exit 1; }
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 || $FAILED -ne 0 ]]; then log "kept $W"; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WALL='"(wallSeconds|eventsPerSecond)"'

# (grep reads here-strings, not pipes: with pipefail an early-exiting grep -q fails the pipe.)
# 1. dotnet pack: exactly the tool, the four model libraries and the simulation library.
dotnet pack -nologo -v quiet -o "$W/packages" >"$W/pack.log" 2>&1 || { cat "$W/pack.log"; fail "dotnet pack failed"; }
TOOL=$(ls "$W/packages"/iommusim.*.nupkg 2>/dev/null | head -n 1)
[[ -n $TOOL ]] || fail "dotnet pack made no iommusim tool package: $(ls "$W/packages")"
V=$(basename "$TOOL" .nupkg); V=${V#iommusim.}
want="IommuSim.Engine.$V.nupkg IommuSim.Hardware.$V.nupkg IommuSim.Simulation.$V.nupkg IommuSim.Uapi.$V.nupkg IommuSim.Workloads.$V.nupkg iommusim.$V.nupkg"
got=$(cd "$W/packages" && ls *.nupkg | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
[[ $got == "$want" ]] || fail "dotnet pack made '$got', expected '$want'"
grep -q 'Command Name="iommusim" EntryPoint="iommusim.dll"' <<<"$(unzip -p "$TOOL" tools/net10.0/any/DotnetToolSettings.xml)" || fail "the tool package has no iommusim command"
for lib in Engine Hardware Uapi Workloads Simulation; do
  grep -q " lib/net10.0/IommuSim.$lib.dll\$" <<<"$(unzip -l "$W/packages/IommuSim.$lib.$V.nupkg")" || fail "IommuSim.$lib package lacks lib/net10.0/IommuSim.$lib.dll"
done
for lib in Uapi Workloads; do
  deps=$(unzip -p "$W/packages/IommuSim.$lib.$V.nupkg" "IommuSim.$lib.nuspec" | grep -o 'dependency id="[^"]*" version="[^"]*"' | LC_ALL=C sort | tr '\n' ' ')
  for d in Engine Hardware; do [[ $deps == *"id=\"IommuSim.$d\" version=\"$V\""* ]] || fail "IommuSim.$lib does not depend on IommuSim.$d $V: $deps"; done
done
deps=$(unzip -p "$W/packages/IommuSim.Simulation.$V.nupkg" "IommuSim.Simulation.nuspec" | grep -o 'dependency id="[^"]*" version="[^"]*"' | LC_ALL=C sort | tr '\n' ' ')
for d in Engine Hardware Uapi Workloads; do [[ $deps == *"id=\"IommuSim.$d\" version=\"$V\""* ]] || fail "IommuSim.Simulation does not depend on IommuSim.$d $V: $deps"; done
for bad in ScottPlot Spectre.Console System.CommandLine; do [[ $deps != *"id=\"$bad\""* ]] || fail "IommuSim.Simulation depends on $bad (plotting and printing belong to the CLI): $deps"; done
ok "dotnet pack: $got"

export NUGET_PACKAGES="$W/nuget"   # a cache of our own: the packages just made, not older ones

# 2. the tool, installed from the local folder into a temporary tool path.
dotnet tool install iommusim --version "$V" --tool-path "$W/tools" --add-source "$W/packages" >"$W/install.log" 2>&1 \
  || { cat "$W/install.log"; fail "dotnet tool install failed"; }
IOMMUSIM="$W/tools/iommusim"
[[ -x $IOMMUSIM ]] || fail "no $IOMMUSIM after install"
ok "dotnet tool install iommusim $V --tool-path (a temporary folder) --add-source (the pack folder)"

"$IOMMUSIM" check configs/quickstart.json >"$W/check.out" 2>&1 || { cat "$W/check.out"; fail "iommusim check configs/quickstart.json failed"; }
grep -q '^# config ok: configs/quickstart.json' "$W/check.out" && grep -q '"maxRequests": 100000' "$W/check.out" || fail "iommusim check did not print the resolved config: $(head -n 5 "$W/check.out")"
ok "installed iommusim check configs/quickstart.json: exit 0, $(wc -l <"$W/check.out") lines"

set +e
"$IOMMUSIM" check "$W/no-such.json" >"$W/bad.out" 2>&1; rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q 'no-such.json' "$W/bad.out" || fail "iommusim check of a missing file: exit $rc, expected 2 naming the file: $(cat "$W/bad.out")"
ok "installed iommusim check of a missing file: exit 2, names the file"

# The installed tool computes what the repository build computes (same summary apart from wall clock).
"$IOMMUSIM" run configs/quickstart.json --set simulation:maxRequests=5000 --out "$W/run-tool" --no-plots --quiet
dotnet simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll run configs/quickstart.json --set simulation:maxRequests=5000 --out "$W/run-repo" --no-plots --quiet
[[ -f $W/run-tool/summary.json ]] || fail "iommusim run wrote no summary.json"
grep -q '"completed": 5000' "$W/run-tool/summary.json" || fail "iommusim run did not complete 5000 requests: $(grep -m1 completed "$W/run-tool/summary.json")"
diff <(grep -v -E "$WALL" "$W/run-tool/summary.json") <(grep -v -E "$WALL" "$W/run-repo/summary.json") || fail "the installed tool's summary.json differs from the repository build's"
ok "installed iommusim run configs/quickstart.json: 5000 requests, summary.json = the repository build's (apart from wall clock)"

# 3. the simulation library package, from a project of one's own outside the repository.
mkdir -p "$W/consumer"
cp scripts/package-example/Program.cs configs/quickstart.json "$W/consumer/"
cat >"$W/consumer/consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="IommuSim.Simulation" Version="$V" />
  </ItemGroup>
</Project>
XML
cat >"$W/consumer/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="iommusim-local" value="$W/packages" />
  </packageSources>
</configuration>
XML
(cd "$W/consumer" && dotnet run -c Release -- quickstart.json "$W/run-lib") >"$W/example.out" 2>&1 || { cat "$W/example.out"; fail "the library example did not build or run"; }
cat "$W/example.out"
grep -q '^measured requests completed: 5000, DMAs faulted: 0$' "$W/example.out" || fail "the library example did not complete its 5000 measured requests"
grep -Eq '^IOTLB: [0-9]+ lookups, miss rate 0\.[0-9]{3}$' "$W/example.out" || fail "the library example printed no IOTLB line"
[[ -f $W/run-lib/summary.json ]] || fail "the library example wrote no summary.json"
diff <(grep -v -E "$WALL" "$W/run-lib/summary.json") <(grep -v -E "$WALL" "$W/run-repo/summary.json") || fail "the library's summary.json differs from the repository build's"
ok "library example built against IommuSim.Simulation $V from the local folder: quickstart.json, 5000 requests, summary.json = the tool's (apart from wall clock)"

echo "package-test: $CHECKS passed, 0 failed"
