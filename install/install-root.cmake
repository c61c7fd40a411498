# SPDX-License-Identifier: Apache-2.0
cmake_policy(VERSION 3.20)
# The root an install goes under, in the one form install-record.cmake records and
# uninstall.cmake compares: DESTDIR made absolute against the working directory (where CMake's
# own install rules put a relative DESTDIR), normalised, without a trailing slash; the host's
# own / (no DESTDIR, or DESTDIR=/) is "". Paths under the root are "${root}${host_path}".
function(gpuh_install_root destdir out)
  set(root "")
  if(NOT destdir STREQUAL "")
    cmake_path(ABSOLUTE_PATH destdir BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE OUTPUT_VARIABLE root)
    string(REGEX REPLACE "/+$" "" root "${root}")
  endif()
  set(${out} "${root}" PARENT_SCOPE)
endfunction()
