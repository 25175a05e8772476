/*
 * The Matter PKI of the tests (see matter_pki.h): made with the openssl program, so
 * the certificates claimd reads are not made by the code that reads them.
 */
#include "matter_pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/*
 * The openssl config the PKI is made with: the Matter attribute names, and one
 * extension section per certificate shape (good ones, and ones that break one rule).
 */
static const char pki_cnf[] =
    "oid_section = oids\n"
    "[oids]\nmatterVID = 1.3.6.1.4.1.37244.2.1\nmatterPID = 1.3.6.1.4.1.37244.2.2\n"
    "[req]\ndistinguished_name = dn\nstring_mask = utf8only\n[dn]\n"
    "[paa]\nbasicConstraints = critical,CA:TRUE,pathlen:1\n"
    "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[pai]\nbasicConstraints = critical,CA:TRUE,pathlen:0\n"
    "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[pai_path1]\nbasicConstraints = critical,CA:TRUE,pathlen:1\n"
    "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[pai_nopath]\nbasicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[pai_no_ski]\nbasicConstraints = critical,CA:TRUE,pathlen:0\n"
    "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = none\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[pai_no_certsign]\nbasicConstraints = critical,CA:TRUE,pathlen:0\n"
    "keyUsage = critical,digitalSignature,cRLSign\nsubjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[dac]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
    "[dac_eku]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[dac_ku_noncrit]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = digitalSignature\n"
    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
    "[dac_ku_more]\nbasicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature,keyEncipherment\n"
    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
    "[dac_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,digitalSignature\n"
    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
    "[dac_no_aki]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = none\n";

bool pki_in_dir(const char *dir, const char *cmd)
{
	char *out = NULL;
	int rc = t_run(&out, "cd '%s' && ( %s ) 2>&1", dir, cmd);
	if (rc != 0)
		fprintf(stderr, "in %s: %s: exit %d: %s\n", dir, cmd, rc, out ? out : "");
	free(out);
	return rc == 0;
}

bool pki_issue(const char *dir, const char *name, const char *keycmd, const char *subj,
               const char *ca, const char *ext, int days)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	         "%s %s.key && chmod 600 %s.key && "
	         "openssl req -config m.cnf -new -key %s.key -subj '%s' -out %s.csr && "
	         "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -days %d "
	         "-set_serial 0x%08X -extfile m.cnf -extensions %s -out %s.pem",
	         keycmd, name, name, name, subj, name, name, ca, ca, days,
	         (unsigned)(days * 131 + (unsigned char)name[0] * 7 + strlen(name)), ext, name);
	return pki_in_dir(dir, cmd);
}

bool pki_make(const char *dir)
{
	char path[1100];
	snprintf(path, sizeof(path), "mkdir -p '%s'", dir);
	if (t_run(NULL, "%s", path) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/m.cnf", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	fputs(pki_cnf, f);
	fclose(f);
	return pki_in_dir(dir, EC_KEY_CMD " paa.key && chmod 600 paa.key && "
	                                  "openssl req -config m.cnf -new -x509 -key paa.key "
	                                  "-subj '/CN=Test PAA/matterVID=" VID
	                                  "' -days 3650 -extensions paa "
	                                  "-out paa.pem") &&
	       pki_issue(dir, "pai", EC_KEY_CMD, "/CN=Test PAI/matterVID=" VID, "paa", "pai", 1825);
}
