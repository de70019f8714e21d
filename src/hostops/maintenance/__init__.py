"""Planned maintenance: the customer notices (8 days ahead, in French) and how they are
delivered."""
