"""Who may do what: the one permission table every write checks (``permissions``), the
accounts (``users``), the signed-in browser sessions (``sessions``) and the sign-in throttle
(``throttle``)."""
