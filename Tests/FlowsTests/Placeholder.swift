// FlowsTests: placeholder until its first test lands.
