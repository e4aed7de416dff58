"""Keys and wallets, EIP-712 typed messages, hashing and Merkle trees: the bottom of the stack."""
