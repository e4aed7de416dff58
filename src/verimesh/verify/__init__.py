"""Verification without trust: the bisection game, the referee, the validator committee
and the economics that make cheating lose money (docs/verification.md)."""
