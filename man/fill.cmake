# Fills a man page template at build time: cmake -DIN=TEMPLATE -DOUT=PAGE
# [-DLOKET=path/to/loket] -DLOKET_VERSION=.. -DLOKET_DATE=.. -DLOKET_CONFDIR=..
# -P fill.cmake. Nothing here depends on the install prefix: the package
# (prefix /usr) is made from any build. With LOKET, @LOKET_COMMANDS@ becomes what
# `loket --man` prints: the COMMANDS section, made from the command table.
# The page is then compressed beside itself (PAGE.gz), as Debian installs it.
if(DEFINED LOKET)
	execute_process(COMMAND ${LOKET} --man OUTPUT_VARIABLE LOKET_COMMANDS
		RESULT_VARIABLE rc)
	if(NOT rc EQUAL 0)
		message(FATAL_ERROR "${LOKET} --man failed: ${rc}")
	endif()
	string(STRIP "${LOKET_COMMANDS}" LOKET_COMMANDS)
endif()
configure_file(${IN} ${OUT} @ONLY)
execute_process(COMMAND gzip -9nkf ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
	message(FATAL_ERROR "gzip ${OUT} failed: ${rc}")
endif()
