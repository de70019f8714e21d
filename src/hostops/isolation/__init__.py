"""Cut-off and bandwidth cap: isolating a server (with its notice and record), releasing
it, the cap after 72 hours' notice."""
