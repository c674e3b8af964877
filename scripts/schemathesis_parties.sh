#!/usr/bin/env bash
# Gives schemathesis the parties' own credentials, so it reaches each operation's success path and
# not only its refusals: against a running `ecny serve` over a demo's data directory, registers a
# teller, a KYC officer and compliance officer at OP01, opens a banked class-2 holder with a
# session, a second holder without a bank account, a merchant with a scan gun, and writes
# schemathesis.toml: which credential (and which of these things' ids) each operation is tried with.
#
# Usage: scripts/schemathesis_parties.sh ECNY BASE_URL DATA_DIR OUT_DIR
set -euo pipefail
ecny=$1
url=$2
data=$3
out=$4
cd "$out"

json() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

for role in teller kyc_officer compliance_officer; do
  "$ecny" staff --profile "$role.json" add --operator OP01 --role "$role" \
    --label "fuzz $role" --data "$data" --server "$url" >/dev/null
done
# A teller the fuzzer may revoke without taking the others' credentials with it.
"$ecny" staff --profile revocable.json add --operator OP01 --role teller \
  --label "fuzz revocable" --data "$data" --server "$url" >/dev/null

"$ecny" wallet --profile holder.json open --operator OP01 --phone 13612345678 --server "$url" >/dev/null
holder=$(json holder.json "['wallet']")
"$ecny" staff --profile teller.json bank-account --wallet "$holder" --cash 5000 >/dev/null
transfer=$("$ecny" wallet --profile holder.json top-up --amount 1000 | sed -n 's/.*(transfer \(T[0-9]*\)).*/\1/p')
"$ecny" wallet --profile holder.json kyc --class 2 --name "Zhao Liu" --id-number 440524188001010014 >/dev/null
"$ecny" wallet --profile holder.json balance >/dev/null
"$ecny" wallet --profile newcomer.json open --operator OP01 --phone 13612345679 --server "$url" >/dev/null
newcomer=$(json newcomer.json "['wallet']")

"$ecny" merchant --profile shop.json onboard --operator OP01 --wallet "$holder" --name "Fuzz Shop" \
  --mcc 5411 --region 320500 --server "$url" --data "$data" >/dev/null
"$ecny" merchant --profile shop.json terminal add --kind scan_gun >/dev/null
shop=$(json shop.json "['merchant']")

admin=$(cat "$data/keys/OP01.token")
lakeside_admin=$(cat "$data/keys/OP02.token")
central_bank=$(cat "$data/keys/central-bank.token")
teller=$(json teller.json "['token']")
kyc=$(json kyc_officer.json "['token']")
compliance=$(json compliance_officer.json "['token']")
revocable=$(json revocable.json "['staff']")
session=$(json holder.json "['session']")
merchant=$(json shop.json "['token']")
scan_gun=$(json shop.json "['terminals'][0]['token']")

cat >schemathesis.toml <<EOF
# Written by scripts/schemathesis_parties.sh: each operation tried as the party that may do it.
# OP01's administrator by default: staff, merchant onboarding, the password-free cap.
headers = { Authorization = "Bearer $admin" }

[[operations]]
include-name = ["POST /v1/operators/{op}/wallets", "POST /v1/wallets/{id}/bank-account"]
headers = { Authorization = "Bearer $teller" }
parameters = { "path.op" = "OP01", "path.id" = "$newcomer" }

[[operations]]
include-name = "POST /v1/wallets/{id}/kyc"
headers = { Authorization = "Bearer $kyc" }
parameters = { "path.id" = "$newcomer" }

[[operations]]
include-name = ["POST /v1/wallets/{id}/deanonymize", "GET /v1/deanonymizations"]
headers = { Authorization = "Bearer $compliance" }
parameters = { "path.id" = "$holder" }

[[operations]]
include-name = "GET /v1/audit"
headers = { Authorization = "Bearer $central_bank" }

# The holder, with the session its signed challenge opened: reads, and the signed commands.
[[operations]]
include-name = [
  "GET /v1/wallets/{id}", "GET /v1/wallets/{id}/payment-code", "GET /v1/wallets/{id}/sub-wallets",
  "POST /v1/wallets/{id}/sub-wallets", "POST /v1/wallets/{id}/exchange",
]
headers = { Authorization = "Bearer $session" }
parameters = { "path.id" = "$holder" }

[[operations]]
include-name = "GET /v1/transfers/{id}"
headers = { Authorization = "Bearer $session" }
parameters = { "path.id" = "$transfer" }

[[operations]]
include-name = [
  "POST /v1/request-payments", "PUT /v1/sub-wallets/{sw}",
  "POST /v1/contracts", "POST /v1/contracts/{id}/confirm", "POST /v1/contracts/{id}/cancel",
]
headers = { Authorization = "Bearer $session" }

# A payment between the two holders: random signatures, so it reaches the signature check.
[[operations]]
include-name = "POST /v1/payments"
headers = { Authorization = "Bearer $session" }
parameters = { "body.payer" = "$holder", "body.payee" = "$newcomer" }

# The regulator reads the demo's contract.
[[operations]]
include-name = "GET /v1/contracts/{id}"
headers = { Authorization = "Bearer $central_bank" }
parameters = { "path.id" = "C00000001" }

# The merchant, at its own shop; tokens are replaced only at the demo's shop (Lakeside's), by its
# administrator, so the fuzz shop's stay good.
[[operations]]
include-path-regex = "^/v1/merchants/\\\\{m\\\\}"
exclude-path-regex = "/(token|code-payments)$"
headers = { Authorization = "Bearer $merchant" }
parameters = { "path.m" = "$shop" }

[[operations]]
include-name = "POST /v1/merchants/{m}/code-payments"
headers = { Authorization = "Bearer $scan_gun" }
parameters = { "path.m" = "$shop" }

[[operations]]
include-path-regex = "/token$"
headers = { Authorization = "Bearer $lakeside_admin" }
parameters = { "path.m" = "M00000001", "path.t" = "1" }

[[operations]]
include-name = "POST /v1/operators/{op}/staff/{s}/revoke"
parameters = { "path.op" = "OP01", "path.s" = "$revocable" }
EOF
echo "schemathesis.toml: each operation as its party (holder $holder, merchant $shop)"
