#!/usr/bin/env python3
"""Re-runs a published red-packet draw independently of ecny, from the algorithm as documented
in src/programs/lottery.rs, with nothing but Python's standard library (SM3 comes from the
OpenSSL that hashlib links against).

    scripts/lottery_verify.py CAMPAIGN.json REGISTRANTS.txt DRAW.json

Exits 0 and prints the number of winners when every winner agrees; exits 1 naming the first
thing that differs.
"""

import hashlib
import json
import sys


def sm3(data):
    return hashlib.new("sm3", data).digest()


def canonical_registrants(path):
    """Each wallet once, ascending; opted in to the offline trial if any line opted it in."""
    opted_in = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            wallet = fields[0]
            if not (wallet[:1] == "W" and wallet[1:].isdigit()) or fields[1:] not in ([], ["offline-trial"]):
                sys.exit(f"{path} line {number}: {line.rstrip()!r} is not a registrant")
            wallet_id = int(wallet[1:])
            opted_in[wallet_id] = opted_in.get(wallet_id, False) or len(fields) == 2
    return sorted(opted_in.items())


def registrants_digest(registrants):
    parts = [b"ECNY-RED-PACKET-REGISTRANTS-v1", len(registrants).to_bytes(8, "big")]
    parts += [wallet.to_bytes(4, "big") + bytes([opted_in]) for wallet, opted_in in registrants]
    return sm3(b"".join(parts))


def draw_positions(seed, digest, campaign_id, packets, registrants):
    key = sm3(b"ECNY-RED-PACKET-DRAW-v1" + seed + digest
              + campaign_id.to_bytes(4, "big") + packets.to_bytes(4, "big"))

    def words():
        block_number = 0
        while True:
            block = sm3(key + block_number.to_bytes(8, "big"))
            block_number += 1
            for start in range(0, 32, 8):
                yield int.from_bytes(block[start:start + 8], "big")

    stream = words()

    def below(bound):
        threshold = (1 << 64) % bound
        while True:
            word = next(stream)
            if word >= threshold:
                return word % bound

    positions = list(range(registrants))
    winners = min(packets, registrants)
    for i in range(winners):
        j = i + below(registrants - i)
        positions[i], positions[j] = positions[j], positions[i]
    return positions[:winners]


def main(campaign_path, registrants_path, draw_path):
    with open(campaign_path, encoding="utf-8") as file:
        campaign = json.load(file)
    with open(draw_path, encoding="utf-8") as file:
        draw = json.load(file)
    if draw["campaign"] != campaign["id"]:
        sys.exit(f"the draw is for {draw['campaign']}, the campaign is {campaign['id']}")
    seed = bytes.fromhex(draw["seed"])
    if sm3(b"ECNY-RED-PACKET-SEED-v1" + seed).hex() != campaign["seed_commitment"]:
        sys.exit("the revealed seed does not match the campaign's commitment: wrong seed")
    registrants = canonical_registrants(registrants_path)
    digest = registrants_digest(registrants)
    if digest.hex() != draw["registrants_digest"] or len(registrants) != draw["registrants"]:
        sys.exit(f"registrant list differs: the draw used {draw['registrants']} with digest "
                 f"{draw['registrants_digest']}, this list has {len(registrants)} with digest {digest.hex()}")
    campaign_id = int(campaign["id"][2:])
    positions = draw_positions(seed, digest, campaign_id, campaign["packet_count"], len(registrants))
    drawn = [f"W{registrants[p][0]:010d}" for p in positions]
    if len(drawn) != len(draw["winners"]):
        sys.exit(f"the draw lists {len(draw['winners'])} winners; re-running it gives {len(drawn)}")
    for packet, (published, ours) in enumerate(zip(draw["winners"], drawn), 1):
        if published != ours:
            sys.exit(f"packet {packet}: the draw lists {published}, re-running it gives {ours}")
    print(f"independently verified: {len(drawn)} winners")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
