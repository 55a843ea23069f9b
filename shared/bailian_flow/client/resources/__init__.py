"""One module per API family; `BailianClient` imports each on first use."""
