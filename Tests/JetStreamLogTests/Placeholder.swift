// JetStreamLogTests: placeholder until its first test lands.
