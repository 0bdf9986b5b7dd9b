from huzhu.cli import main

raise SystemExit(main())
