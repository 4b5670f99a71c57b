"""The synthetic county (`generator`) and the demo of a whole year (`county_year`): a client of
the application like the command line and the HTTP API."""
