# Fails when a test program's case table (PROGRAM --list) and the list CTest registers
# for it (CASES, from tests/CMakeLists.txt) differ, naming the cases on either side.
execute_process(COMMAND ${PROGRAM} --list OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} --list failed (${rc})")
endif()
string(REGEX REPLACE "\n$" "" out "${out}")
string(REPLACE "\n" ";" table "${out}")
set(unregistered ${table})
list(REMOVE_ITEM unregistered ${CASES})
set(missing ${CASES})
list(REMOVE_ITEM missing ${table})
if(unregistered OR missing)
  message(FATAL_ERROR "case lists differ for ${PROGRAM}:\n"
    "  in the program but not registered in tests/CMakeLists.txt: ${unregistered}\n"
    "  registered but not in the program: ${missing}")
endif()
list(LENGTH table n)
message(STATUS "${n} cases, all registered")
