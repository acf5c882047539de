"""The DASP Top 10 categories (NCC Group's Decentralized Application Security Project, 2018; the taxonomy of the
SmartBugs curated set, Durieux et al., ICSE 2020) and which Slither detectors report each."""

from __future__ import annotations

__all__ = ["CATEGORIES", "SLITHER_TO_DASP", "TITLES"]

CATEGORIES: tuple[str, ...] = (
    "reentrancy", "access_control", "arithmetic", "unchecked_low_level_calls", "denial_of_service",
    "bad_randomness", "front_running", "time_manipulation", "short_addresses", "other",
)

TITLES: dict[str, str] = {
    "reentrancy": "Reentrancy (DASP 1)",
    "access_control": "Access control (DASP 2)",
    "arithmetic": "Arithmetic issues (DASP 3)",
    "unchecked_low_level_calls": "Unchecked return values for low-level calls (DASP 4)",
    "denial_of_service": "Denial of service (DASP 5)",
    "bad_randomness": "Bad randomness (DASP 6)",
    "front_running": "Front-running (DASP 7)",
    "time_manipulation": "Time manipulation (DASP 8)",
    "short_addresses": "Short address attack (DASP 9)",
    "other": "Unknown unknowns / other (DASP 10)",
}

# Slither 0.11 detector argument -> DASP category.  Detectors not listed (informational, optimisation, naming)
# are not DASP findings and are left out of the report.
SLITHER_TO_DASP: dict[str, str] = {
    "reentrancy-eth": "reentrancy", "reentrancy-no-eth": "reentrancy", "reentrancy-benign": "reentrancy",
    "reentrancy-events": "reentrancy", "reentrancy-unlimited-gas": "reentrancy",
    "reentrancy-balance": "reentrancy",
    "suicidal": "access_control", "arbitrary-send-eth": "access_control", "arbitrary-send-erc20": "access_control",
    "tx-origin": "access_control", "controlled-delegatecall": "access_control",
    "unprotected-upgrade": "access_control", "protected-vars": "access_control",
    "delegatecall-loop": "access_control", "missing-zero-check": "access_control",
    "divide-before-multiply": "arithmetic", "incorrect-exp": "arithmetic", "incorrect-shift": "arithmetic",
    "tautology": "arithmetic",
    "unchecked-lowlevel": "unchecked_low_level_calls", "unchecked-send": "unchecked_low_level_calls",
    "unchecked-transfer": "unchecked_low_level_calls",
    "calls-loop": "denial_of_service", "costly-loop": "denial_of_service", "locked-ether": "denial_of_service",
    "msg-value-loop": "denial_of_service",
    "weak-prng": "bad_randomness",
    "timestamp": "time_manipulation",
    "shadowing-state": "other", "shadowing-local": "other", "uninitialized-state": "other",
    "uninitialized-local": "other", "uninitialized-storage": "other", "incorrect-equality": "other",
    "encode-packed-collision": "other", "incorrect-modifier": "other", "controlled-array-length": "other",
}
