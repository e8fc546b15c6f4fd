/* skiff's version, as `skiff version` and the API's GET / report it. */
#ifndef SKIFF_VERSION_H
#define SKIFF_VERSION_H

#define SKIFF_VERSION "0.2.0"

#endif
