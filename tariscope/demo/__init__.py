"""The demo site that `make run` serves: a 3CX PBX in Kyiv, a carrier, subscribers and a
month of generated CDR files (site.py; the country codes it draws from are in data/)."""
