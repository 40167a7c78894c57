"""The labelling studio: a local web page where people define attributes, label images, train,
deploy and roll back (``fashiontag studio``; :mod:`fashiontag.studio.app`)."""
