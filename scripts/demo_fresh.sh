#!/usr/bin/env bash
# make demo's last step: keep a served model fresh. Serve a TF Serving base
# path, retrain from Go on new rows with `kerasgo train --into`, which
# publishes version 2 only because it beats version 1 on the validation rows;
# the server picks it up while answering; then a worse run (a learning rate
# far too high) is not promoted (exit status 3) and the server keeps version 2.
#
# Usage: scripts/demo_fresh.sh OUT_DIR   (run from the repository root)
set -euo pipefail
out=${1:?usage: scripts/demo_fresh.sh OUT_DIR}
base=$out/base
rm -rf "$base" && mkdir -p "$base"
cp -r testdata/models/fortunes "$base/1"
data=(--data testdata/features/fortunes/train.libsvm --validation-data testdata/features/fortunes/test.libsvm --epochs 1 --seed 1)

./bin/kerasgo serve --model "fortunes=$base" --rest-port 0 --grpc-port -1 --poll-interval 200ms >"$out/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
url=
for _ in $(seq 100); do
	url=$(sed -n 's/.*address=\(http:[^ ]*\).*/\1/p' "$out/serve.log" | head -1)
	[ -n "$url" ] && curl -sf "$url/readyz" >/dev/null && break
	sleep 0.1
done
[ -n "$url" ] || { cat "$out/serve.log"; exit 1; }
version() { curl -s "$url/v1/models/fortunes" | tr -d ' \n' | sed -n 's/.*"version":"\([0-9]*\)","state":"AVAILABLE".*/\1/p'; }
row=$(head -1 testdata/features/fortunes/test.libsvm | cut -d' ' -f2- | awk '{for(i=1;i<=NF;i++){split($i,a,":"); printf "%s%s:%s", (i>1?",":""), a[1], a[2]}}')
ask() {
	python3 - "$url" "$row" <<'PY'
import json, sys, urllib.request
url, pairs = sys.argv[1], sys.argv[2]
x = [0.0] * 256
for p in pairs.split(","):
    i, v = p.split(":")
    x[int(i)] = float(v)
req = urllib.request.Request(url + "/v1/models/fortunes:predict", json.dumps({"instances": [x]}).encode(), {"Content-Type": "application/json"})
p = json.load(urllib.request.urlopen(req))["predictions"][0]
best = max(range(len(p)), key=p.__getitem__)
print(f"class {best} with p={p[best]:.4f}")
PY
}
echo "   serving $base (version $(version)) at $url; first test row: $(ask)"

echo "   kerasgo train --into $base (new rows, judged on the validation rows):"
./bin/kerasgo train --into "$base" "${data[@]}" >"$out/fresh-train.log" 2>&1 || { cat "$out/fresh-train.log"; exit 1; }
grep -E '^(epoch|promoted|not promoted)' "$out/fresh-train.log" | sed 's/^/     /'
for _ in $(seq 100); do [ "$(version)" = 2 ] && break; sleep 0.1; done
[ "$(version)" = 2 ] || { echo "the server did not pick up version 2"; cat "$out/serve.log"; exit 1; }
echo "   the server now answers with version $(version): $(ask)"

echo "   a worse run (--learning-rate 0.05):"
status=0
./bin/kerasgo train --into "$base" "${data[@]}" --learning-rate 0.05 >"$out/fresh-worse.log" 2>&1 || status=$?
grep -E '^(epoch|promoted|not promoted)' "$out/fresh-worse.log" | sed 's/^/     /'
[ "$status" = 3 ] || { cat "$out/fresh-worse.log"; echo "want exit status 3 (not promoted), got $status"; exit 1; }
[ "$(version)" = 2 ] || { echo "the server stopped serving version 2"; exit 1; }
echo "   exit status $status (not promoted); still serving version $(version): $(ask)"
