import sys

from tinywindow.cli import main

sys.exit(main())
