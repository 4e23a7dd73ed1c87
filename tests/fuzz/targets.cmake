# The harnesses, for both builds of them: the libFuzzer one (CMakeLists.txt
# here, PH_FUZZ) and the replay of their inputs in the tests
# (replay/CMakeLists.txt). Each includes this after defining
# ph_fuzz_target(<name> [SOURCES files...] [LIBS targets...]
# [DEPENDS targets...]) for fuzz_<name>.c.
set(PH_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

# The plugins' sources as libraries, so harnesses call the plugins' own
# functions; they are built once even when both builds are configured.
if(NOT TARGET ph_fuzz_database)
  pkg_check_modules(PH_FUZZ_CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
  pkg_check_modules(PH_FUZZ_PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
  file(GLOB database_sources CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/plugins/database/*.c)
  add_library(ph_fuzz_database STATIC ${database_sources})
  target_include_directories(ph_fuzz_database PUBLIC
    ${PROJECT_SOURCE_DIR}/plugins/database ${LIBPQ_INCLUDE_DIRS})
  target_link_libraries(ph_fuzz_database PUBLIC plughost_sdk
    PkgConfig::SQLITE3 PkgConfig::CJSON PkgConfig::PH_FUZZ_CRYPTO
    Threads::Threads ${CMAKE_DL_LIBS} m)
  file(GLOB files_sources CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/plugins/files/*.c)
  add_library(ph_fuzz_files STATIC ${files_sources})
  target_include_directories(ph_fuzz_files PUBLIC
    ${PROJECT_SOURCE_DIR}/plugins/files)
  target_link_libraries(ph_fuzz_files PUBLIC plughost_sdk PkgConfig::CJSON
    PkgConfig::PH_FUZZ_PCRE2 Threads::Threads)
endif()

find_library(PH_FUZZ_CRITERION criterion REQUIRED)

ph_fuzz_target(http)
ph_fuzz_target(lines)
# The protocol on a generation of fixture plugins, published by the unit
# tests' fixture (whose checks are criterion's).
ph_fuzz_target(jsonrpc
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/unit_fixture.c
  LIBS ${PH_FUZZ_CRITERION}
  DEPENDS fixture_ok)
ph_fuzz_target(schema)
ph_fuzz_target(uri_template)
ph_fuzz_target(sql_scan LIBS ph_fuzz_database)
ph_fuzz_target(cursor LIBS ph_fuzz_database)
ph_fuzz_target(params LIBS ph_fuzz_database)
ph_fuzz_target(files_path LIBS ph_fuzz_files)
