from fashiontag.cli import main

raise SystemExit(main())
