"""Mail operations across a server: suspending and resuming outgoing mail (mass mail), with
the customer's notice."""
