"""The access-token signing keys: a key ring file (kernel.keyring) of the accounts service."""

MISSING_HINT = "run 'accounts-admin init-keys' or set ACCOUNTS_GENERATE_SIGNING_KEYS=true"
