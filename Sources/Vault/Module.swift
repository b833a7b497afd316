// Vault: placeholder until its first source file lands.
