"""R5.2/R5.3: importing carriers' rate decks. readers.py turns a file into sheets of rows,
mapping.py (pure) turns rows into validated code rows or rejects, service.py writes them."""
