"""The security checklist of issue 9 as tests: each sends the bad thing to a running podium."""
