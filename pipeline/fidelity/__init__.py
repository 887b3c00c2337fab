"""The synthetic-data fidelity study: how close each method's samples come to real data."""
