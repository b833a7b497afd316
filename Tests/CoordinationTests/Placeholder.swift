// CoordinationTests: placeholder until its first test lands.
